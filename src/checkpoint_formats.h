// Internal: the checkpoint formats ClipModel::load tries, in order, one line each
// (checkpoint.h). Each names a CheckpointFormat <name>_checkpoint_format() defined in
// src/checkpoint_<name>.cpp.
CLIPXAI_CHECKPOINT_FORMAT(torchscript)
CLIPXAI_CHECKPOINT_FORMAT(hf)
CLIPXAI_CHECKPOINT_FORMAT(open_clip)
CLIPXAI_CHECKPOINT_FORMAT(state_dict)
