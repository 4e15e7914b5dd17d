"""smc-lab: real Linux SMC (net/smc) CLC handshakes in QEMU guests, checked with smctrace.

Modules: common (paths, errors), kernels (the kernels the lab boots, `build`, `kernels`),
scenario (scenario headers and expectations), initramfs (payloads appended to the guests'
initramfs), qemu (booting guests), check (checking captures and in-guest traces), live
(tracing a bridge on the host), matrix (`test`), cli (the command line).
"""
