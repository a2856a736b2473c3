# Runtime shared by every denseclip config (mmseg 1.x defaults + our plugin).
custom_imports = dict(imports=['denseclip'], allow_failed_imports=False)
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
    # denseclip's key (mmengine ignores it): float32 matrix products in TF32
    # on GPUs that have it, as PyTorch already runs float32 convolutions
    # (denseclip/engine/matmul_precision.py); False for full float32
    matmul_tf32=True,
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False

tta_model = dict(type='SegTTAModel')
