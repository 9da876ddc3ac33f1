"""The evaluation classifier behind ``accuracy_target``: is a translated image recognised as its target?

The papers judge a translation by a classifier trained on *real* images of the training split: the fraction
of translated images it assigns to the target domain (or, for attributes, the per-attribute agreement with
the target attribute vector). Its accuracy on real test images (the tables' "Real" row) is the ceiling any
method can reach and is reported next to it.

No pretrained weights are needed: the classifier is trained here on first use and cached as a state_dict in
``<cache_dir>/evalclf-<key>.pt`` (plus a JSON sidecar with its settings and real-test accuracy). The key
hashes everything that defines the classifier — dataset name, image size, domain/attribute names, split,
architecture and the fitting :class:`Recipe` — so a change to any of them trains a new one. The classifier
reads the suite's images as they come, B×3×H×W in [-1, 1].

One job per module: :mod:`.recipe` (the settings and their defaults, declared once), :mod:`.model` (the
architectures), :mod:`.examples` (images, labels, loss and verdict per task), :mod:`.fit` (the training loop),
:mod:`.scoring` (accuracy), :mod:`.cache` (key and files) and :mod:`.evaluator` (load or fit, then cache).
"""

from metrics.eval_classifier.cache import CACHE_FORMAT, KEY_FIELDS, cache_key, default_cache_dir
from metrics.eval_classifier.evaluator import EvalClassifier, get_or_train_eval_classifier
from metrics.eval_classifier.examples import TASKS
from metrics.eval_classifier.fit import train_eval_classifier
from metrics.eval_classifier.model import ARCHS, SmallClassifier, build_classifier
from metrics.eval_classifier.recipe import DEFAULT_EPOCHS, DEFAULT_SHIFT, DEFAULT_WARMUP_STEPS, Recipe
from metrics.eval_classifier.scoring import classifier_accuracy, evaluate_real_accuracy

__all__ = [
    "ARCHS",
    "CACHE_FORMAT",
    "DEFAULT_EPOCHS",
    "DEFAULT_SHIFT",
    "DEFAULT_WARMUP_STEPS",
    "KEY_FIELDS",
    "TASKS",
    "EvalClassifier",
    "Recipe",
    "SmallClassifier",
    "build_classifier",
    "cache_key",
    "classifier_accuracy",
    "default_cache_dir",
    "evaluate_real_accuracy",
    "get_or_train_eval_classifier",
    "train_eval_classifier",
]
