"""Layer 1, the network and its parameterization: what one replica is and how it trains.

model (pure-functional ResNet families), schemes (+ schemes.toml: scheme tables of per-role
exponents), scaling (tables -> per-role init, multiplier and learning-rate factors at a width
and depth), optim (SGD, Adam), data (datasets), movement (per-layer feature movement), train
(one replica's init, step and evaluation), schedules (learning-rate schedules),
hyperparameters (what a sweep axis may vary). Imports nothing else of hptransfer.
"""
