# smclab: kernel=k7 vms=2 also=*
# M: SMC-R over rxe + UEID from an IPv4-mapped IPv6 client (AF_SMC/SMCPROTO_SMC6 to ::ffff:192.0.2.1, as Java does): from 6.14 the client offers SMC-R v2, before it offered none
# expect: outcome=smc path=SMC-R version=2 release=1 messages=proposal,accept,confirm
# expect@k510: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612lo: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030007 decline_from=server
run_server() { smcr_serve 6 ::; }
run_client() { smcr_connect 6 ::ffff:192.0.2.1; }
