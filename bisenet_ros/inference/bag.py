"""rosbag2 (sqlite3 or MCAP) image topics in and out, through the pure-Python ``rosbags``.

No ROS installation is needed: recorded drives can be segmented offline on any machine,
and the labels written back as new topics beside the originals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ..image_decoding import compressed_to_array, image_to_array
from .sources import Decode

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
STORAGE_SUFFIXES = (".db3", ".mcap")
TYPESTORE = get_typestore(Stores.LATEST)


def _is_storage(path: Path) -> bool:
    return path.is_file() and path.suffix in STORAGE_SUFFIXES


def bag_path(path: str | Path) -> Path:
    """What to open for a bag directory or one of its storage files: the directory where it
    has a metadata.yaml (which lists every split file), else the storage file alone."""
    path = Path(path)
    return path.parent if _is_storage(path) and is_bag(path.parent) else path


def is_bag(path: str | Path) -> bool:
    path = Path(path)
    return (path / "metadata.yaml").is_file() or _is_storage(path)


def check_metadata(path: str | Path) -> None:
    """ValueError if the folder ``path`` holds rosbag2 storage files but no metadata.yaml, as
    a recording cut off before it closed (it would otherwise look like an empty folder)."""
    path = Path(path)
    storage = sorted(f.name for f in path.glob("*") if _is_storage(f)) if path.is_dir() else []
    if storage and not is_bag(path):
        raise ValueError(
            f"{path} holds rosbag2 storage ({', '.join(storage)}) but no metadata.yaml (a "
            "recording cut off before it closed has none): give one of its storage files as "
            f"the input, or write it with `ros2 bag reindex {path}`"
        )


@contextmanager
def _reading(path: str | Path) -> Iterator[Reader]:
    """rosbags' Reader on the bag; a damaged bag is a ValueError that says so."""
    try:
        with Reader(bag_path(path)) as reader:
            yield reader
    except ReaderError as error:
        raise ValueError(
            f"cannot read the rosbag2 {bag_path(path)}: {error} (is it damaged, or a "
            "recording cut off before it closed?)"
        ) from error


def image_topics(path: str | Path) -> dict[str, str]:
    """Image topics of a bag: topic -> message type."""
    with _reading(path) as reader:
        return {c.topic: c.msgtype for c in reader.connections if c.msgtype in (IMAGE, COMPRESSED)}


def choose_topic(path: str | Path, topic: str | None) -> str:
    """``topic`` if the bag has it as an image topic, else the only image topic, else an error."""
    topics = image_topics(path)
    if topic is not None:
        if topic not in topics:
            raise ValueError(f"{path} has no image topic {topic!r}; image topics: {sorted(topics)}")
        return topic
    if len(topics) != 1:
        raise ValueError(f"{path} has image topics {sorted(topics)}: choose one with --topic")
    return next(iter(topics))


def message_image(msg: object, msgtype: str) -> tuple[np.ndarray, str]:
    """An Image or CompressedImage message as (array, channel order), decoded exactly as the
    node decodes a live frame; ImageError if it cannot be used."""
    return compressed_to_array(msg) if msgtype == COMPRESSED else image_to_array(msg)


def image_message(header: object, plane: np.ndarray, encoding: str) -> object:
    """A ``sensor_msgs/Image`` carrying ``plane`` (mono8 HxW or rgb8 HxWx3) with ``header``."""
    height, width = plane.shape[:2]
    channels = 1 if plane.ndim == 2 else plane.shape[2]
    return TYPESTORE.types[IMAGE](
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * channels,
        data=np.ascontiguousarray(plane).reshape(-1),
    )


def count_messages(path: str | Path, topic: str) -> int:
    with _reading(path) as reader:
        return sum(c.msgcount for c in reader.connections if c.topic == topic)


# process(timestamp ns, header, decode) -> {topic: (plane, encoding)} to add to the copy
Process = Callable[[int, object, Decode], dict]


def segment_bag(
    source: str | Path,
    topic: str,
    process: Process,
    output: str | Path | None = None,
    storage: str = "mcap",
) -> None:
    """Run ``process`` on every image of ``topic``.

    With ``output``, writes a new bag holding every message of ``source`` and, right after
    each image, the planes ``process`` returned, as ``sensor_msgs/Image`` with the image's
    header and timestamp.
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {sorted(STORAGES)}, not {storage!r}")
    with _reading(source) as reader, ExitStack() as stack:
        writer = None
        if output is not None:
            writer = Writer(Path(output), version=9, storage_plugin=STORAGES[storage])
            stack.enter_context(writer)
            copies = {c.id: _copy_connection(writer, c) for c in reader.connections}
            added: dict[str, object] = {}
        wanted = (
            reader.connections if writer else [c for c in reader.connections if c.topic == topic]
        )
        for connection, timestamp, raw in reader.messages(connections=wanted):
            if writer:
                writer.write(copies[connection.id], timestamp, raw)
            if connection.topic != topic:
                continue
            msg = TYPESTORE.deserialize_cdr(raw, connection.msgtype)
            planes = process(timestamp, msg.header, partial(message_image, msg, connection.msgtype))
            for name, (plane, encoding) in planes.items() if writer else ():
                if name not in added:
                    added[name] = writer.add_connection(name, IMAGE, typestore=TYPESTORE)
                data = TYPESTORE.serialize_cdr(image_message(msg.header, plane, encoding), IMAGE)
                writer.write(added[name], timestamp, data)


def _copy_connection(writer: Writer, c: object) -> object:
    """The same topic, type, definition and QoS in ``writer``. The bag's own definition and
    hash where it has both; a storage file read without its metadata.yaml has no hash, and
    then the typestore's standard types supply them."""
    own = bool(c.msgdef and c.digest)
    try:
        return writer.add_connection(
            c.topic,
            c.msgtype,
            msgdef=c.msgdef.data if own else None,
            rihs01=c.digest if own else None,
            typestore=None if own else TYPESTORE,
            serialization_format=c.ext.serialization_format,
            offered_qos_profiles=c.ext.offered_qos_profiles,
        )
    except KeyError:
        raise ValueError(
            f"cannot copy {c.topic} ({c.msgtype}) into the output bag: its type hash is not in "
            "the input, which has no metadata.yaml, and the type is not a standard one"
        ) from None
