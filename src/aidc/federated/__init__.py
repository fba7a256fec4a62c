"""Federated training as a pipeline stage: clients as Ray actors with private partitions, FedAvg/FedProx, DP, SecAgg."""
