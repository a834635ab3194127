"""redshift-loader: the code deployed with the Chalice app (pure core, service, adapters)."""
