# smclab: kernel=k7 vms=1 also=*
# T3: AF_SMC listener with TCP_FASTOPEN set (net.ipv4.tcp_fastopen=3): the listener falls back, its SYN-ACK has no SMC option, no CLC
# expect: outcome=fallback path=- version=- messages= decline=-
# (from 6.1 on, the fallen-back server never echoes: the client gives up after RUN_TIMEOUT; 5.10 echoes)
RUN_TIMEOUT=8
SRVWAIT=100
run_single() {
	run sysctl -w net.ipv4.tcp_fastopen=3
	run smctool ueid-add SMCLAB-UEID-1
	SRV_ENV=SMCECHO_TFO=listen echo_local lo smc smc 4 127.0.0.1
}
