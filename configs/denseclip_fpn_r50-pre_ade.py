# DenseCLIP RN50 + FPN with pre-model prompting (the paper's "pre" variant):
# 8 learnable queries decode the visual context [g; z] with the context
# decoder, and the result replaces the learnable contexts at the text
# encoder's input. The text encoder then runs for every image (150 class
# names each), so training is slower and its output cannot be cached; the
# post-model variant (denseclip_fpn_r50_ade.py) is the paper's default.
_base_ = './denseclip_fpn_r50_ade.py'
model = dict(
    prompting='pre',
    # queries and output in the text tower's token width (512), memory the
    # attention-pool features [g; z] (1024)
    context_decoder=dict(visual_dim=512, memory_dim=1024))
