"""Certificate and policy profiles (data only): YAML files validated by ca.profiles at load."""
