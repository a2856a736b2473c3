"""Give models the class names of the dataset they run on."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ClassNamesHook(Hook):
    """Before a run, set the dataset's ``metainfo['classes']`` on every module
    of the model that has ``class_names = None`` and a ``set_class_names``
    method (DenseCLIP, MaskCLIP heads). Modules given names in the config keep
    them.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        classes = None
        # whichever loop this run built; building another would load its data
        for loop in (runner._test_loop, runner._val_loop, runner._train_loop):
            if isinstance(loop, BaseLoop):
                classes = loop.dataloader.dataset.metainfo.get('classes')
                break
        if not classes:
            return
        model = runner.model
        for module in model.modules():
            if getattr(module, 'class_names', False) is None and hasattr(
                    module, 'set_class_names'):
                module.set_class_names(list(classes))
                print_log(
                    f'{type(module).__name__}: {len(classes)} class names '
                    f'from the dataset metainfo', logger='current')
