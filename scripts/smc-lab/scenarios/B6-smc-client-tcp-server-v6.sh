# smclab: kernel=k61 vms=1 also=*
# B6: as B over IPv6 ::1
# expect: connections=1 outcome=fallback path=- version=- messages=
run_single() {
	echo_local lo tcp smc 6 ::1
}
