"""HTTP layer: routes translate wire ↔ domain; rules live in iam/ and catalog/."""
