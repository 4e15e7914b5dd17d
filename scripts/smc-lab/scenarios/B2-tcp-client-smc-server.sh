# smclab: kernel=k61 vms=1 also=*
# B2: plain AF_INET client -> AF_SMC server over lo: no option in SYN, server falls back silently
# expect: connections=0
run_single() {
	echo_local lo smc tcp 4 127.0.0.1
}
