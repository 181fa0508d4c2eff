"""sigmalab optimizer: search spaces, GP surrogate, acquisition, campaigns and the virtual lab."""
