from .maskclip_model import (METHODS, PAMR_SETTINGS, maskclip_model_cfg,
                             method_settings, method_test_pipeline)

__all__ = ['METHODS', 'PAMR_SETTINGS', 'maskclip_model_cfg',
           'method_settings', 'method_test_pipeline']
