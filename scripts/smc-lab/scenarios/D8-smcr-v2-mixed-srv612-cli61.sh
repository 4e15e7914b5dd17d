# smclab: kernel=k612 server_kernel=k612 client_kernel=k61 vms=2 guest=D3-smcr-v2-rxe-pnet
# D8: mixed kernels, 6.12 server <- 6.1 client, SMC-Rv2 over rxe with UEID + PNET
# expect: outcome=fallback path=- version=- messages=proposal,accept,confirm,decline decline=0x02010000 decline_from=server
# (the guests run D3's script: UEID + PNET on both sides; only the kernels differ)
