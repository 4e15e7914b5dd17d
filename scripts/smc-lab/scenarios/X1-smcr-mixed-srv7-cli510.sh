# smclab: kernel=k7 server_kernel=k7 client_kernel=k510 vms=2 guest=D3-smcr-v2-rxe-pnet
# X1: mixed kernels, 7.x server <- 5.10 client (no SMC-R v2 in 5.10), rxe + UEID + PNET on both
# expect: outcome=fallback
