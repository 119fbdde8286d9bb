print("fqat-bench")
