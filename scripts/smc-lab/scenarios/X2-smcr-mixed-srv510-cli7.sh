# smclab: kernel=k7 server_kernel=k510 client_kernel=k7 vms=2 guest=D3-smcr-v2-rxe-pnet
# X2: mixed kernels, 5.10 server <- 7.x client proposing SMC-R v2 (+ v1), rxe + UEID + PNET on both
# expect: outcome=fallback
