"""The cloud APIs translated onto the engine: Lambda (`aws_lambda`) and Function Compute 3.0
(`fc`), entered through `entry.CompatApps` and authenticated by the SDKs' own signatures
(`signatures`); see docs/compat.md."""
