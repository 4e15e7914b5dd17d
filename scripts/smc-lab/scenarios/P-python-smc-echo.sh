# smclab: kernel=k612lo vms=1 python=yes also=*
# P: scripts/smc_echo.py (Python, libc bind/connect/accept for AF_SMC) over loopback-ism: AF_SMC v4, AF_SMC v6, IPPROTO_SMC v4 -> 3 SMC-Dv2 handshakes
# expect: connections=3 outcome=smc path=SMC-D version=2 messages=proposal,accept,confirm
# expect@k510: connections=2 outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: connections=2 outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612: connections=3 outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k617: connections=3 outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
PY="hostpy -S /host/repo/scripts/smc_echo.py"
run_single() {
	run smctool ueid-add SMCLAB-UEID-1
	cap_start lo lo
	bg_server $PY -s -a 127.0.0.1 -p 7001
	wait_listen 7001
	run $PY -c -a 127.0.0.1 -p 7001
	wait_server
	bg_server $PY -s -a ::1 -p 7002
	wait_listen 7002
	run $PY -c -a ::1 -p 7002 -m "Hello, v6"
	wait_server
	bg_server $PY -s --ipproto-smc -a 127.0.0.1 -p 7003
	wait_listen 7003
	run $PY -c --ipproto-smc -a 127.0.0.1 -p 7003 -m "Hello, IPPROTO_SMC"
	wait_server
	cap_stop
}
