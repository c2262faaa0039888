"""The sample configurations in deploy/ are valid for the programs that read them."""

from pathlib import Path

from seatmon.wallboard.config import load

ROOT = Path(__file__).resolve().parent.parent


def test_board_example_loads_with_the_documented_defaults():
    cfg = load(ROOT / "deploy/board.example.toml", environ={})
    assert cfg.listen == "127.0.0.1:8080" and cfg.limit_ms == 10000
    assert cfg.influx_url == "http://127.0.0.1:8086" and cfg.mqtt_port == 1883
