"""Linux netfilter (iptables) kernel log lines, including Ubiquiti EdgeOS, to ECS."""

from collectors.iptables.parse import DATASET, parse

__all__ = ["DATASET", "parse"]
