"""The SMC-relevance rule: which frames can matter for SMC, in one package.

``rule`` holds the rule and every constant of it, ``reference`` the Python reference,
``smc_match.h`` the C implementation shared by the offline engine (``_engine.c``, wrapped
by ``engine``) and the eBPF filter (``smctrace/bpf/clc.c``, loaded by ``bcc``), ``cbpf``
the stateless classic-BPF program.  See :mod:`smctrace.match.rule`.
"""
