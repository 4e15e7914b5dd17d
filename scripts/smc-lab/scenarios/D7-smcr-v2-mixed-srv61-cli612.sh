# smclab: kernel=k612 server_kernel=k61 client_kernel=k612 vms=2 guest=D3-smcr-v2-rxe-pnet
# D7: mixed kernels, 6.1 server <- 6.12 client, SMC-Rv2 over rxe with UEID + PNET: v2 release negotiation (6.12 proposes release 1, 6.1 answers release 0)
# expect: outcome=fallback path=- version=- messages=proposal,accept,confirm,decline decline=0x02010000 decline_from=client
# (the guests run D3's script: UEID + PNET on both sides; only the kernels differ)
