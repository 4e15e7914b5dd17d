# smclab: kernel=k61 vms=2 also=*
# D3: as D2 plus a PNET table entry (eth0 + rxe0 port 1 -> PNETID SMCLABNET): needed on 6.1, whose SMC looks up the RoCE device of the TCP interface via ops.get_netdev, which rxe lacks
# expect: outcome=smc path=SMC-R version=2 release=0 messages=proposal,accept,confirm
# expect@k612: outcome=smc path=SMC-R version=2 release=1 messages=proposal,accept,confirm
# expect@k510: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612lo: outcome=smc path=SMC-R version=2 release=1 messages=proposal,accept,confirm decline=-
# expect@k617: outcome=smc path=SMC-R version=2 release=1 messages=proposal,accept,confirm decline=-
# expect@k7: outcome=smc path=SMC-R version=2 release=1 messages=proposal,accept,confirm decline=-
SCN_TIMEOUT=250 # the 6.1 side hangs after Confirm (the Decline, if any, comes ~5 s later): give up after 25 s
SRVWAIT=220
run_server() { smcr_serve 4 192.0.2.1; }
run_client() { smcr_connect 4 192.0.2.1; }
