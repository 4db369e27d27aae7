"""Transfer learning: backbones (``create_model(..., features_only=True)``), freezing, and
fine-tuning a pretrained model on a new image folder (``cnnlab finetune``).

    from cnnlab.transfer import freeze, unfreeze
    model = create_model("mobilenet_v2")
    load_keras_weights(model, "mobilenet_v2.h5")       # cnnlab.interop
    model.reset_classifier(5)
    freeze(model)                                      # train the new head only
    ...
    unfreeze(model)                                    # then the whole network
"""

from .freezing import freeze, frozen_parts, unfreeze

__all__ = ["freeze", "frozen_parts", "unfreeze"]
