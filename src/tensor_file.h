// Internal: files of named tensors, as the checkpoint readers get them — fp32, contiguous, on
// the CPU, by the name the file gives.
//
// Kinds, told apart by their first bytes (a file named *.safetensors is always read as one):
//   safetensors  (huggingface/safetensors' format, read by the project: there is no C++ library
//                for it in Debian) — an 8-byte little-endian header length N, N bytes of JSON
//                {"NAME": {"dtype", "shape": [..], "data_offsets": [begin, end]}, ...,
//                "__metadata__": {...}}, then the data, the offsets counted from its start.
//                Every entry is checked against the file before anything is read: a known dtype,
//                non-negative dimensions whose product fits, end - begin = elements x item size,
//                end within the data, no two entries overlapping. The file is memory-mapped and
//                each tensor copied out as fp32. Readable dtypes: F32, F16, BF16, F64 and the
//                integer ones (I64 position ids and the like); F8 and unsigned wide ones are
//                refused naming the entry.
//   torch.save   (a zip holding <archive>/data.pkl and one record per storage, as torch.save
//                writes by default since PyTorch 1.6) — a state dict: a dict or OrderedDict of
//                name -> tensor, read by a restricted unpickler that knows only the operations
//                such a file uses and builds nothing else, so a hostile pickle can run no code.
//                LibTorch's own torch::pickle_load is not used: it cannot read an OrderedDict,
//                which is what state_dict() returns. Legacy (non-zip) torch.save files are
//                refused, saying so.
//   TorchScript  (a zip as torch.jit.save writes it: data.pkl holds the module tree, code/ the
//                modules' code) — every tensor attribute of the module tree (parameters, buffers,
//                plain tensor attributes) by qualified name, read by the same restricted
//                unpickler, which there also builds the scripted objects as plain attribute
//                dicts: the archive's code is never compiled or run.
// Records PyTorch stores uncompressed (all it writes) are read from a memory map of the file and
// converted to fp32 in one copy; a compressed one (a zip re-packed by another tool) is inflated.
// The mapped pages of each tensor (safetensors' too) leave the process's memory once copied, so
// the peak is about the fp32 weights, not those plus the file.
// Errors are one-line Error(Model)s naming the file and the entry or field at fault.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/types.h>

namespace clipxai {

using NamedTensors = std::unordered_map<std::string, torch::Tensor>;

enum class TensorFileKind { Safetensors, TorchSave };

// The kind of `path` from its first bytes, or nullopt with `why` set ("not a safetensors file
// (...) nor a zip file").
std::optional<TensorFileKind> sniff_tensor_file(const std::string& path, std::string* why);

// Throws Error(Model) naming `path`: unreadable, of neither kind, or malformed as above.
NamedTensors read_tensor_file(const std::string& path);

// The two kinds, for readers that know which one they hold.
NamedTensors read_safetensors(const std::string& path);
NamedTensors read_torch_save(const std::string& path);

struct TorchScriptArchive {
  NamedTensors tensors;
  std::map<std::string, std::string> extra_files;  // those asked for that the archive holds
};
// `extra_files`: names stored with torch.jit.save's _extra_files (the archive's extra/ folder).
TorchScriptArchive read_torchscript(const std::string& path,
                                    const std::vector<std::string>& extra_files);

}  // namespace clipxai
