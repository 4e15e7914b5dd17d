# smclab: kernel=k7 vms=1 also=*
# T3: AF_SMC listener with TCP_FASTOPEN set (net.ipv4.tcp_fastopen=3): the listener falls back, its SYN-ACK has no SMC option, no CLC
# expect: outcome=fallback path=- version=- messages= decline=-
run_single() {
	run sysctl -w net.ipv4.tcp_fastopen=3
	run smctool ueid-add SMCLAB-UEID-1
	SRV_ENV=SMCECHO_TFO=listen echo_local lo smc smc 4 127.0.0.1
}
