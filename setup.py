"""Plain pip install of bisenet_ros (training, export, offline inference without ROS).

The ROS 2 build (messages, launch, config) goes through CMakeLists.txt and colcon.
"""

from setuptools import find_packages, setup

setup(
    name="bisenet_ros",
    version="0.1.0",
    description="Real-time semantic segmentation (BiSeNetV1/V2) for ROS 2 robots and vehicles",
    packages=find_packages(include=["bisenet_ros", "bisenet_ros.*"]),
    # the bundled default model: checkpoint, the same as ONNX (installs without torch), manifest
    package_data={"bisenet_ros": ["weights/*.pt", "weights/*.onnx", "weights/*.yaml"]},
    license="MIT",
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "opencv-python-headless>=4.8",
        "simplejpeg",
        "PyYAML",
        "tqdm",
        "onnxruntime",
        "sympy",  # onnxruntime's quantization pre-processing (bisenet export int8) imports it
    ],
    extras_require={
        "train": ["torch>=2.1", "onnx", "onnxscript", "tensorboard"],
        "bag": ["rosbags"],
    },
    entry_points={
        "console_scripts": [
            "bisenet = bisenet_ros.cli:main",
            "segment_node = bisenet_ros.ros.segment_node:main",
        ]
    },
)
