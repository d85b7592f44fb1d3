"""ComfyUI nodes: thin adapters over aiprod_core, one file per stage."""

from . import host
from .decode import VAEDecode
from .flow import CameraMotion, FlowExtractor, FlowVisualize
from .hybridize import Hybridize
from .latent import EmptyLatentVideo, ExtendVideo, ImageToVideo, JoinClips, VAEEncode
from .loaders import (
    BackboneLoader,
    CheckpointLoader,
    LoraLoader,
    LTX2Loader,
    TextEncoderLoader,
    UpscalerLoader,
    VAELoader,
)
from .sampler import HybridSampler, SpatioTemporalGuidance
from .text_encode import TextEncode
from .train import LoraTrainer, VideoDataset
from .upscale import LatentUpscale

host.register_folders()
host.write_example_input()

# Node ids never change once released: saved workflows refer to them.
NODES = {
    "AIPRODCheckpointLoader": (CheckpointLoader, "AIPROD Checkpoint Loader"),
    "AIPRODBackboneLoader": (BackboneLoader, "AIPROD Backbone Loader"),
    "AIPRODVAELoader": (VAELoader, "AIPROD VAE Loader"),
    "AIPRODTextEncoderLoader": (TextEncoderLoader, "AIPROD Text Encoder Loader"),
    "AIPRODUpscalerLoader": (UpscalerLoader, "AIPROD Latent Upscaler Loader"),
    "AIPRODLoraLoader": (LoraLoader, "AIPROD LoRA Loader"),
    "AIPRODLTX2Loader": (LTX2Loader, "AIPROD LTX-2 Loader"),
    "AIPRODSpatioTemporalGuidance": (SpatioTemporalGuidance, "AIPROD Spatio-Temporal Guidance (STG)"),
    "AIPRODTextEncode": (TextEncode, "AIPROD Multilingual Text Encode"),
    "AIPRODEmptyLatentVideo": (EmptyLatentVideo, "AIPROD Empty Latent Video"),
    "AIPRODVAEEncode": (VAEEncode, "AIPROD VAE Encode"),
    "AIPRODImageToVideo": (ImageToVideo, "AIPROD Image To Video"),
    "AIPRODExtendVideo": (ExtendVideo, "AIPROD Extend Video"),
    "AIPRODJoinClips": (JoinClips, "AIPROD Join Clips"),
    "AIPRODSampler": (HybridSampler, "AIPROD Hybrid Sampler"),
    "AIPRODLatentUpscale": (LatentUpscale, "AIPROD Latent Upscale 2x"),
    "AIPRODVAEDecode": (VAEDecode, "AIPROD VAE Decode"),
    "AIPRODVideoDataset": (VideoDataset, "AIPROD Video Dataset"),
    "AIPRODLoraTrainer": (LoraTrainer, "AIPROD Curriculum LoRA Trainer"),
    "AIPRODHybridize": (Hybridize, "AIPROD Hybridize"),
    "AIPRODFlowExtractor": (FlowExtractor, "AIPROD Flow Extractor"),
    "AIPRODCameraMotion": (CameraMotion, "AIPROD Camera Motion"),
    "AIPRODFlowVisualize": (FlowVisualize, "AIPROD Flow Visualize"),
}
NODE_CLASS_MAPPINGS = {k: v[0] for k, v in NODES.items()}
NODE_DISPLAY_NAME_MAPPINGS = {k: v[1] for k, v in NODES.items()}
