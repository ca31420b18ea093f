"""Raw topics of an episode as MCAP (ROS 2 profile, CDR messages, ``ros2msg`` schemas): the
recorder's optional second output, readable with the ``mcap`` reader and the
``mcap-ros2-support`` decoder."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path


def _msgdef(msg_type: str, share_dirs: list[Path]) -> str:
    """ROS 2 concatenated message definition (the 'ros2msg' schema MCAP readers expect)."""

    def find(t: str) -> tuple[str, str]:
        pkg, _, name = t.replace("/msg/", "/").partition("/")
        for d in share_dirs:
            f = d / pkg / "msg" / f"{name}.msg"
            if f.is_file():
                return f"{pkg}/msg/{name}", f.read_text()
        raise FileNotFoundError(f"no .msg file for {t}")

    primitives = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
                  "int32", "uint32", "int64", "uint64", "string", "wstring"}
    out, seen, todo = [], set(), [msg_type]
    while todo:
        t = todo.pop(0)
        full, text = find(t)
        if full in seen:
            continue
        seen.add(full)
        if out:
            out.append("=" * 80 + f"\nMSG: {full}")
        out.append(text.strip())
        pkg = full.split("/")[0]
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            ftype = re.split(r"[\s\[<]", line, 1)[0]
            if ftype in primitives:
                continue
            todo.append(ftype if "/" in ftype else f"{pkg}/{ftype}")
    return "\n".join(out) + "\n"


class McapEpisodeWriter:
    """Raw serialized topics of one episode into ``<dir>/episode_XXXXXX.mcap`` (closed on
    stop; a file cut by a crash is still readable up to its last chunk with mcap recover)."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._writer = self._file = None
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._share = self._share_dirs()

    @staticmethod
    def _share_dirs() -> list[Path]:
        dirs = [Path(p) / "share" for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
        dirs.append(Path(sys.prefix) / "share")
        return [d for d in dirs if d.is_dir()]

    def open(self, index: int) -> Path:
        # mcap: optional, only raw-topic recording needs it
        from mcap.writer import Writer

        path = self.dir / f"episode_{index:06d}.mcap"
        self._file = open(path, "wb")
        self._writer = Writer(self._file)
        self._writer.start(profile="ros2", library="posevla_ros recorder")
        self._schemas, self._channels = {}, {}
        return path

    def write(self, topic: str, msg_type: str, data: bytes, log_time_ns: int) -> None:
        if self._writer is None:
            return
        if topic not in self._channels:
            if msg_type not in self._schemas:
                self._schemas[msg_type] = self._writer.register_schema(
                    name=msg_type, encoding="ros2msg", data=_msgdef(msg_type, self._share).encode())
            self._channels[topic] = self._writer.register_channel(
                topic=topic, message_encoding="cdr", schema_id=self._schemas[msg_type])
        self._writer.add_message(channel_id=self._channels[topic], log_time=log_time_ns,
                                 publish_time=log_time_ns, data=data)

    def close(self, keep: bool = True) -> None:
        if self._writer is None:
            return
        self._writer.finish()
        self._file.close()
        if not keep:
            Path(self._file.name).unlink(missing_ok=True)
        self._writer = self._file = None
