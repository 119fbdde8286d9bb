print("fqat-shell")
