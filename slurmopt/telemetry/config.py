"""The ``[telemetry]`` configuration section (probe, health, alerts, channels, security).

Flat fields of TOML types, each with its help text, as :mod:`slurmopt.config`
expects; :meth:`TelemetryConfig.probe`, :meth:`~TelemetryConfig.health`,
:meth:`~TelemetryConfig.alerts` and :meth:`~TelemetryConfig.security` build the
dataclasses the code uses. The commands read it when the section is registered
(``"telemetry": "slurmopt.telemetry.config:TelemetryConfig"`` in
``slurmopt.config.SECTIONS``); a command-line flag always wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slurmopt.telemetry.alerts import AlertConfig
from slurmopt.telemetry.anomaly import AnomalyConfig
from slurmopt.telemetry.health import DEFAULT_CRITICAL_XIDS, HealthConfig
from slurmopt.telemetry.probe import ProbeConfig
from slurmopt.telemetry.security import SecurityConfig


def _h(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class TelemetryConfig:
    """Node telemetry, health checks and alerting."""

    nvml_deadline_s: float = field(default=10.0, metadata=_h("Watchdog for all NVML calls."))
    xid_wait_ms: int = field(default=200, metadata=_h("How long a probe listens for XIDs."))
    kmsg_path: str = field(
        default="/dev/kmsg", metadata=_h("Kernel log read for XIDs ('' to skip).")
    )
    disk_paths: tuple[str, ...] = field(
        default=("/var/spool/slurmd", "/var/spool/slurm", "/tmp"),
        metadata=_h("File systems whose usage the probe reports."),
    )
    gres_conf: str = field(
        default="/etc/slurm/gres.conf",
        metadata=_h("gres.conf: expected GPUs and Slurm GPU index -> NVML device."),
    )
    push_to: str = field(default="db", metadata=_h("probe --push target: db or slurm."))
    expected_gpus: int = field(
        default=-1, metadata=_h("GPUs a node must show; -1: from Slurm's GRES / gres.conf.")
    )
    max_temperature_c: int = field(
        default=90, metadata=_h("health: drain above this GPU temperature (0: no rule).")
    )
    critical_xids: tuple[int, ...] = field(
        default=tuple(sorted(DEFAULT_CRITICAL_XIDS)),
        metadata=_h("health: XIDs that drain a node."),
    )
    health_state_file: str = field(
        default="", metadata=_h("ECC baselines and latches; empty: <state dir>/health-state.json.")
    )
    health_timeout_s: float = field(default=60.0, metadata=_h("Bound of one health run."))
    alert_state_file: str = field(
        default="",
        metadata=_h("Alert series and open alerts; empty: <state dir>/alerts-state.json."),
    )
    idle_util_pct: float = field(default=5.0, metadata=_h("gpu_idle: mean SM utilization limit."))
    idle_window_s: int = field(default=1800, metadata=_h("gpu_idle: sliding window."))
    alert_temperature_c: float = field(default=85.0, metadata=_h("temperature alert limit."))
    temperature_for_s: int = field(default=300, metadata=_h("temperature must hold this long."))
    ecc_window_s: int = field(default=3600, metadata=_h("ECC growth window."))
    ecc_corrected_growth: float = field(
        default=1000.0, metadata=_h("Corrected ECC errors per window that raise an alert.")
    )
    wait_p90_s: float = field(default=14400.0, metadata=_h("Partition p90 wait alert limit."))
    wait_for_s: int = field(default=900, metadata=_h("p90 wait must hold this long."))
    node_unavailable_for_s: int = field(
        default=600, metadata=_h("A node down/drained this long raises an alert.")
    )
    renotify_s: int = field(default=0, metadata=_h("Repeat a firing alert this often; 0: once."))
    anomaly_metrics: tuple[str, ...] = field(
        default=("temp_c", "power_w"), metadata=_h("GPU metrics watched for drift.")
    )
    anomaly_z: float = field(default=4.0, metadata=_h("Robust z-score that flags a drift."))
    webhooks: tuple[str, ...] = field(default=(), metadata=_h("Alert webhook URLs (JSON POST)."))
    email_to: tuple[str, ...] = field(default=(), metadata=_h("Alert email recipients."))
    email_from: str = field(default="slurmopt@localhost", metadata=_h("Alert email sender."))
    smtp: str = field(default="127.0.0.1:25", metadata=_h("SMTP HOST:PORT for alert email."))
    allowed_gpu_users: tuple[str, ...] = field(
        default=("root", "nvidia-persistenced", "dcgm"),
        metadata=_h("Users whose GPU processes are never flagged."),
    )
    kill_foreign: bool = field(
        default=False, metadata=_h("SIGTERM GPU processes outside their Slurm allocation.")
    )

    def probe(self) -> ProbeConfig:
        return ProbeConfig(
            nvml_deadline_s=self.nvml_deadline_s,
            xid_wait_ms=self.xid_wait_ms,
            disk_paths=self.disk_paths,
            gres_conf=self.gres_conf,
            kmsg_path=self.kmsg_path,
        )

    def health(self) -> HealthConfig:
        return HealthConfig(
            expected_gpus=None if self.expected_gpus < 0 else self.expected_gpus,
            max_temperature_c=self.max_temperature_c or None,
            critical_xids=frozenset(self.critical_xids),
            timeout_s=self.health_timeout_s,
        )

    def alerts(self) -> AlertConfig:
        return AlertConfig(
            gpu_idle_util_pct=self.idle_util_pct,
            gpu_idle_window_s=self.idle_window_s,
            temperature_c=self.alert_temperature_c,
            temperature_for_s=self.temperature_for_s,
            ecc_window_s=self.ecc_window_s,
            ecc_corrected_growth=self.ecc_corrected_growth,
            wait_p90_s=self.wait_p90_s,
            wait_for_s=self.wait_for_s,
            node_unavailable_for_s=self.node_unavailable_for_s,
            renotify_s=self.renotify_s,
            anomaly=AnomalyConfig(metrics=self.anomaly_metrics, z_threshold=self.anomaly_z),
        )

    def security(self) -> SecurityConfig:
        return SecurityConfig(
            allowed_users=frozenset(self.allowed_gpu_users), kill=self.kill_foreign
        )


def load_telemetry_config() -> TelemetryConfig:
    """The ``[telemetry]`` section when the config system knows it, else the defaults.

    Raises:
        slurmopt.errors.ConfigError: an invalid configuration file.
    """
    from slurmopt import config

    if "telemetry" not in config.SECTIONS:
        return TelemetryConfig()
    section = config.load()["telemetry"]
    assert isinstance(section, TelemetryConfig)
    return section
