"""Training options: one YAML file (``options/train.yml``) parsed once into typed dataclasses.

``ExperimentOptions`` is the whole file; ``TrainOptions`` its ``train:`` section (schedule, losses,
optimisers). Parsing, overrides and errors: ``dfdnet.utils.options``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dfdnet.archs.dfdnet_arch import GeneratorConfig
from dfdnet.data.degradation_pipeline import DegradationConfig
from dfdnet.losses.reconstruction import PIXEL_LOSSES
from dfdnet.utils.device import check_device
from dfdnet.utils.options import OptionsError, apply_overrides, from_dict, read_yaml, to_dict


@dataclass
class InitOptions:
    """The YAML `init:` section: where the generator's starting weights and fixed parts come from (never
    silently random).

    pretrain_network_g: a generator checkpoint (this project's, released or BasicSR) to start from.
    encoder_weights: a VGG state-dict file for the encoder (torchvision vgg19 / VGG16-layout VggFace).
    random_encoder_seed: explicitly use a random encoder (smoke tests only); recorded in the experiment.
    dictionaries: a dictionary folder (16 .npy) or BasicSR .pth, e.g. made by build_dictionary.py.
    random_dictionary_seed / random_dictionary_atoms: explicitly generate random dictionaries
        (smoke tests only), written to experiments/<name>/random_dictionary/.
    """
    pretrain_network_g: str | None = None
    encoder_weights: str | None = None
    random_encoder_seed: int | None = None
    dictionaries: str | None = None
    random_dictionary_seed: int | None = None
    random_dictionary_atoms: int = 8
    pretrain_new_layers: bool = False  # layers pretrain_network_g lacks (confidence blocks) keep their init
    pretrain_widen_subpixel_head: bool = False  # a narrower subpixel head in pretrain_network_g is widened, same function


@dataclass
class DiscriminatorOptions:
    """The whole-face multi-scale discriminator and, when ``components`` names parts, the component
    discriminators (``dfdnet.archs.discriminator.ComponentDiscriminator``; trained only with
    ``train.component_weight`` > 0)."""
    scales: tuple = (1, 2, 4, 8)
    base_channels: int = 64
    num_down: int = 3
    max_channels: int = 512
    components: tuple = ()  # e.g. [left_eye, right_eye, mouth]
    component_crop_sizes: tuple = (80, 80, 112)  # one per part, in 512-px face pixels
    component_enlarge: float = 1.2
    component_base_channels: int = 32


@dataclass
class TrainDataOptions:
    """HQ aligned faces with 68 landmarks, degraded on the fly.

    hq_folder: folder of aligned square faces (read in sorted order).
    landmarks: a landmark cache (.npz) or a folder of released-format ``<name>.txt``; if None,
        landmarks are detected with dlib's 68-point model once and cached in the experiment.
    landmark_size: side of the faces the landmarks refer to (scaled to image_size).
    max_images: use only the first N faces (after the validation hold-out); None = all.
    val_count: the last N faces of the folder are held out for the validation set.
    batch_size: per process (per GPU).
    """
    hq_folder: str | tuple = ''
    landmarks: str | None = None
    landmark_size: int = 512
    max_images: int | None = None
    val_count: int = 0
    flip_prob: float = 0.5
    batch_size: int = 4
    num_workers: int = 4
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 2
    degradation: DegradationConfig = field(default_factory=DegradationConfig)

    def __post_init__(self):
        _check_at_least('train_data', self, batch_size=1, landmark_size=1, val_count=0, num_workers=0,
                        prefetch_factor=1)
        if self.max_images is not None and self.max_images < 1:
            raise OptionsError(f'train_data.max_images must be >= 1 or null (all), got {self.max_images}')
        if not 0.0 <= self.flip_prob <= 1.0:
            raise OptionsError(f'train_data.flip_prob must be in [0, 1], got {self.flip_prob}')


@dataclass
class ValOptions:
    """Fixed, seeded degraded validation set made once (written to ``folder``, then reused).

    folder: where the set is written; default experiments/<name>/val_set.
    freq: validate every ``freq`` iterations; num_save_images: restored faces saved per validation.
    """
    folder: str | None = None
    seed: int = 1234
    freq: int = 5000
    num_save_images: int = 4
    degradation: DegradationConfig = field(default_factory=DegradationConfig)

    def __post_init__(self):
        _check_at_least('val', self, freq=1, num_save_images=0)


@dataclass
class TrainOptions:
    """Losses, optimisers and schedule (paper §3.3 / §4.1)."""
    total_iter: int = 300000
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple = (0.5, 0.999)
    pixel_weight: float = 100.0
    pixel_loss: str = 'mse'  # 'mse' (paper) or 'psnr': mean of 10 log10(MSE) per face (losses/reconstruction.py)
    psnr_floor_db: float = 40.0  # pixel_loss psnr: faces better than this weigh no more than at it
    perceptual_weights: tuple = (0.5, 1.0, 2.0, 4.0)
    perceptual_net: str = 'generator'  # 'generator' (its own encoder) or 'vggface' (a user file)
    perceptual_net_file: str | None = None
    adversarial_weights: tuple = (4.0, 2.0, 1.0, 1.0)
    style_weights: tuple = (0.0, 0.0, 0.0, 0.0)  # Gram-matrix L1 on the perceptual net's layers, whole face
    component_style_weight: float = 0.0  # the same Gram loss on the component crops (discriminator.components), x this
    component_weight: float = 0.0  # hinge GAN weight of each component discriminator (discriminator.components)
    feature_matching_weight: float = 0.0  # L1 between D activations on output and truth (pix2pixHD), all Ds
    d_warmup_iter: int = 0  # the first N iterations train D only; G is not updated
    lr_schedule: str = 'plateau'  # 'plateau' (paper: x lr_factor when validation stalls) or 'cosine' (to min_lr at total_iter)
    lr_patience: int = 5
    lr_factor: float = 0.5
    min_lr: float = 1e-7
    ema_decay: float = 0.0  # 0 = no EMA of G
    amp: str | None = None  # None, 'bf16', 'fp16' or 'auto' (bf16 where the hardware has it natively)
    find_unused_parameters: bool = True
    train_encoder: bool = False  # train the VGG encoder too (a first, 0-DFT stage; pixel loss only)
    train_only: tuple | None = None  # e.g. [subpixel_head]: only these generator modules train, the rest is frozen in eval mode

    @property
    def use_discriminator(self) -> bool:
        """False when every adversarial weight is 0: no D forward or step at all."""
        return any(float(w) for w in self.adversarial_weights) or self.component_weight > 0

    def __post_init__(self):
        if self.train_encoder and self.perceptual_net == 'generator' and any(self.perceptual_weights):
            raise OptionsError('train.train_encoder with perceptual_net: generator would compute the perceptual '
                               'loss with the encoder being trained; set train.perceptual_weights to zeros')
        if self.train_only is not None:
            self.train_only = tuple(str(name) for name in self.train_only)
            if not self.train_only or self.train_encoder:
                raise OptionsError('train.train_only needs at least one module name and train.train_encoder: false')
        if self.lr_schedule not in ('plateau', 'cosine'):
            raise OptionsError(f"train.lr_schedule must be 'plateau' or 'cosine', got {self.lr_schedule!r}")
        if self.pixel_loss not in PIXEL_LOSSES:
            raise OptionsError(f'train.pixel_loss must be one of {PIXEL_LOSSES}, got {self.pixel_loss!r}')
        if self.perceptual_net not in ('generator', 'vggface'):
            raise OptionsError(f"train.perceptual_net must be 'generator' or 'vggface', got {self.perceptual_net!r}")
        if self.perceptual_net == 'vggface' and not self.perceptual_net_file:
            raise OptionsError('train.perceptual_net is vggface: set train.perceptual_net_file')
        if self.amp not in (None, 'bf16', 'fp16', 'auto'):
            raise OptionsError(f"train.amp must be null, 'bf16', 'fp16' or 'auto', got {self.amp!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise OptionsError(f'train.ema_decay must be in [0, 1), got {self.ema_decay}')
        if self.total_iter < 1:
            raise OptionsError(f'train.total_iter must be >= 1, got {self.total_iter}')
        if min(self.lr_g, self.lr_d, self.pixel_weight, self.min_lr, self.lr_factor) < 0 or self.lr_patience < 0:
            raise OptionsError('train.lr_g, lr_d, pixel_weight, min_lr, lr_factor and lr_patience must be >= 0')
        if min(self.component_weight, self.feature_matching_weight, self.d_warmup_iter, self.component_style_weight) < 0:
            raise OptionsError('train.component_weight, component_style_weight, feature_matching_weight and '
                               'd_warmup_iter must be >= 0')
        if len(self.style_weights) != len(self.perceptual_weights):
            raise OptionsError(f'train.style_weights needs {len(self.perceptual_weights)} values, one per perceptual layer')
        if self.train_encoder and self.perceptual_net == 'generator' and any(self.style_weights):
            raise OptionsError('train.train_encoder with perceptual_net: generator would compute the style loss with '
                               'the encoder being trained; set train.style_weights to zeros')


@dataclass
class LoggerOptions:
    print_freq: int = 100
    save_checkpoint_freq: int = 5000
    use_tb_logger: bool = True

    def __post_init__(self):
        _check_at_least('logger', self, print_freq=1, save_checkpoint_freq=1)


def _check_at_least(section: str, options, **minimums) -> None:
    """``OptionsError`` naming ``section.key`` when an integer option is below its minimum (a batch
    size of 0, a frequency of 0 that would divide by zero, ...)."""
    for key, minimum in minimums.items():
        value = getattr(options, key)
        if value < minimum:
            raise OptionsError(f'{section}.{key} must be >= {minimum}, got {value}')


@dataclass
class ExperimentOptions:
    """Everything one training run needs; ``name`` picks experiments/<name>/."""
    name: str = ''
    manual_seed: int = 0
    device: str = 'auto'  # 'auto', 'cpu', 'cuda', 'cuda:1', ... (dfdnet.utils.device)
    experiments_root: str = 'experiments'
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    init: InitOptions = field(default_factory=InitOptions)
    discriminator: DiscriminatorOptions = field(default_factory=DiscriminatorOptions)
    train_data: TrainDataOptions = field(default_factory=TrainDataOptions)
    val: ValOptions = field(default_factory=ValOptions)
    train: TrainOptions = field(default_factory=TrainOptions)
    logger: LoggerOptions = field(default_factory=LoggerOptions)

    def __post_init__(self):
        if not self.name or '/' in self.name or self.name.startswith('.'):
            raise OptionsError(f'a top-level "name" (a plain folder name) is required, got {self.name!r}')
        self.device = check_device(self.device, 'device')
        if self.generator.image_size % (max(self.discriminator.scales) * 2 ** self.discriminator.num_down):
            raise OptionsError('generator.image_size must be divisible by max(discriminator.scales) * '
                               '2**discriminator.num_down')
        if len(self.train.adversarial_weights) != len(self.discriminator.scales):
            raise OptionsError(f'train.adversarial_weights has {len(self.train.adversarial_weights)} values for '
                               f'{len(self.discriminator.scales)} discriminator scales')
        if (self.train.component_weight > 0 or self.train.component_style_weight > 0) and not self.discriminator.components:
            raise OptionsError('train.component_weight and component_style_weight > 0 need discriminator.components '
                               '(e.g. [left_eye, right_eye, mouth])')
        w = self.init
        if not (w.pretrain_network_g or w.encoder_weights or w.random_encoder_seed is not None):
            raise OptionsError('no encoder weights: set init.pretrain_network_g, init.encoder_weights, or '
                               'explicitly init.random_encoder_seed (random encoder, smoke tests only)')
        if self.generator.dft_levels and not (w.dictionaries or w.random_dictionary_seed is not None):
            raise OptionsError('no dictionaries: set init.dictionaries, or explicitly '
                               'init.random_dictionary_seed (random atoms, smoke tests only)')
        if not self.train_data.hq_folder:
            raise OptionsError('train_data.hq_folder is required')

    @property
    def experiment_dir(self) -> Path:
        return Path(self.experiments_root) / self.name


def check_experiment_paths(options: ExperimentOptions, resume_state=None) -> None:
    """``OptionsError`` naming the option and the path when an input of the run is missing: checked
    before ``experiments/<name>`` is created or an existing one moved aside."""
    data, init = options.train_data, options.init
    folders = data.hq_folder if isinstance(data.hq_folder, (list, tuple)) else (data.hq_folder,)
    if not folders:
        raise OptionsError('train_data.hq_folder is required')
    for folder in folders:
        if not Path(folder).is_dir():
            raise OptionsError(f'train_data.hq_folder: folder not found: {folder}')
    files = {'train_data.landmarks': data.landmarks, 'init.pretrain_network_g': init.pretrain_network_g,
             'init.encoder_weights': init.encoder_weights, 'init.dictionaries': init.dictionaries,
             'train.perceptual_net_file': options.train.perceptual_net_file, '--resume_state': resume_state}
    for key, path in files.items():
        if path is not None and not Path(path).exists():
            raise OptionsError(f'{key}: not found: {path}')


def parse_options(path, overrides=()) -> tuple[ExperimentOptions, dict]:
    """Read a YAML file, apply overrides, return (typed options, resolved plain dict)."""
    path = Path(path)
    data = read_yaml(path)
    apply_overrides(data, overrides)
    try:
        options = from_dict(ExperimentOptions, data)
    except OptionsError as exc:
        raise OptionsError(f'{path}: {exc}') from exc
    return options, to_dict(options)
