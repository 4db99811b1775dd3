"""Pure domain logic: order and product models, normalisation, errors. No I/O."""
