"""ablate: ablation studies of attention modules (Coordinate Attention, SE, CBAM) in efficient CNNs."""

__version__ = "0.1.0"
