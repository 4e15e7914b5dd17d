# smclab: kernel=k7 vms=1 also=* smoke=yes
# T1: AF_SMC client sets TCP_FASTOPEN_CONNECT before connect(): SMC falls back before the SYN (no SMC option), plain TCP on the wire
# expect: connections=0
run_single() {
	run smctool ueid-add SMCLAB-UEID-1
	CLI_ENV=SMCECHO_TFO=connect echo_local lo smc smc 4 127.0.0.1
}
