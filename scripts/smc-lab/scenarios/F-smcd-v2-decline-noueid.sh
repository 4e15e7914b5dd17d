# smclab: kernel=k612lo vms=1 also=* trace=yes
# F: loopback-ism but no UEID configured: SMC-Dv2 Proposal (EID count 0, SEID off) -> SMCv2 Decline 0x03030008 (NOUEID), TCP fallback
# expect: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030008 decline_from=server
# expect@k510: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k617: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
run_single() {
	ls /sys/class/smc_lo 2>/dev/null >> /out/log.txt; ls /sys/devices/virtual/*/ 2>/dev/null | grep -i loop >> /out/log.txt
	echo_local lo smc smc 4 127.0.0.1
}
