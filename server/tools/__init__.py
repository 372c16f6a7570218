"""Tools beside the product: the demo plant, the history generator and the shift
simulator. Production code never imports them."""
