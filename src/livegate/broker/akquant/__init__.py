"""An akquant custom broker behind livegate (needs the `akquant` extra)."""
