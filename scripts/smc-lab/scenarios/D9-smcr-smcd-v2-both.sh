# smclab: kernel=k612lo vms=2 guest=D2-smcr-v2-rxe also=*
# D9: both guests have loopback-ism (CONFIG_SMC_LO) and rxe + UEID: client proposes SMC-D v2 AND SMC-R v2 (type B); loopback-ism cannot reach another OS, so the server picks SMC-R v2
# expect: outcome=smc path=SMC-R version=2 release=1 messages=proposal,accept,confirm
# expect@k510: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# (the guests run D2's script; on k612lo the Proposal also offers loopback-ism)
