"""The choices every interface offers, defined once: node parameters, the launch file, the
command line and the runtime all take them from here."""

BACKENDS = ("auto", "tensorrt", "torch", "onnxruntime")  # auto: the fastest one present
PRECISIONS = ("fp32", "fp16", "int8")
RESIZE_MODES = ("stretch", "letterbox")  # how a frame reaches the network's input size
DATASET_FORMATS = ("camvid", "cityscapes", "custom", "cvat", "labelme")  # --format, data.format
