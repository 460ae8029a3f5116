"""Stage logic on Arrow data: no AWS here, so every rule is tested without a cloud."""
