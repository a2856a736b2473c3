from .maskclip_model import (METHODS, PAMR_SETTINGS, VFM_METHODS,
                             maskclip_model_cfg, method_settings,
                             method_test_pipeline)
from .training_free import (DEFAULT_METHOD, class_labels, dataset_meta_of,
                            default_method, parse_classes, resolve_clip,
                            training_free_model)

__all__ = ['METHODS', 'PAMR_SETTINGS', 'VFM_METHODS', 'maskclip_model_cfg',
           'method_settings', 'method_test_pipeline', 'DEFAULT_METHOD',
           'class_labels', 'dataset_meta_of', 'default_method',
           'parse_classes', 'resolve_clip', 'training_free_model']
