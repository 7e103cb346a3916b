"""gitops-edge: a pull-based GitOps update agent for Docker edge devices."""

__version__ = "0.1.0"
