# smclab: kernel=k7 vms=1 also=*
# T2: AF_SMC client sends its first bytes with sendto(MSG_FASTOPEN) instead of connect(): SMC falls back before the SYN, plain TCP
# expect: connections=0
run_single() {
	run smctool ueid-add SMCLAB-UEID-1
	CLI_ENV=SMCECHO_TFO=sendto echo_local lo smc smc 4 127.0.0.1
}
