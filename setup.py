"""denseclip: DenseCLIP and MaskCLIP / MaskCLIP+ as an MMSegmentation 1.x plugin."""
import os.path as osp

from setuptools import find_packages, setup


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(osp.dirname(__file__), 'denseclip', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


CORRUPTIONS_LIB = 'imagecorruptions-imaug==1.1.5'

setup(
    name='denseclip',
    version=read_version(),
    description='DenseCLIP and MaskCLIP/MaskCLIP+ for MMSegmentation 1.x',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['denseclip', 'denseclip.*']),
    include_package_data=True,
    # torch 2.13.0's wheels need 3.10 (README: Prerequisites)
    python_requires='>=3.10',
    # torch and mmcv (full build with ops) are installed first by tools/install.sh:
    # mmcv has no wheels for current torch and must be built against the torch in use.
    install_requires=[
        'torch>=2.1',
        'mmcv>=2.0.0,<2.2.0',
        'mmengine>=0.10.0,<1.0.0',
        'mmsegmentation==1.2.2',
        'ftfy',
        'regex',
        'numpy',
        'opencv-python-headless',
        # tools/download_clip.py and hf-hub: names fetch through its cache
        'huggingface_hub>=0.20',
        # open_clip's and transformers' .safetensors CLIP files
        'safetensors',
    ],
    # the Corrupt transform (tools/robustness.py, --corrupt); optional: the
    # package imports without it. The fork, not the 2020 imagecorruptions
    # (numpy 2): README, Installation. tools/install.sh installs it.
    extras_require={
        'robustness': [CORRUPTIONS_LIB],
        'tests': ['pytest', 'transformers', CORRUPTIONS_LIB],
    },
    license='Apache License 2.0',
)
