#include "tensor_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <variant>

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "clipxai/error.h"
#include "clipxai/input_file.h"

namespace clipxai {
namespace {

// The safetensors specification's bound on the header, which keeps a hostile length from
// becoming a giant allocation.
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;
// No CLIP weight comes near this many elements; a larger product is a corrupt shape.
constexpr uint64_t kMaxElements = uint64_t{1} << 40;

struct SafetensorsDtype {
  const char* name;
  size_t item_size;
  std::optional<torch::ScalarType> scalar_type;  // nullopt: valid, but LibTorch cannot hold it
};

// Every dtype of the safetensors specification.
const SafetensorsDtype kSafetensorsDtypes[] = {
    {"F64", 8, torch::kDouble},    {"F32", 4, torch::kFloat},    {"F16", 2, torch::kHalf},
    {"BF16", 2, torch::kBFloat16}, {"I64", 8, torch::kLong},     {"I32", 4, torch::kInt},
    {"I16", 2, torch::kShort},     {"I8", 1, torch::kChar},      {"U8", 1, torch::kByte},
    {"BOOL", 1, torch::kBool},     {"U64", 8, std::nullopt},     {"U32", 4, std::nullopt},
    {"U16", 2, std::nullopt},      {"F8_E5M2", 1, std::nullopt}, {"F8_E4M3", 1, std::nullopt},
};

std::optional<std::string> first_bytes(const std::string& path, size_t count, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = "cannot be opened for reading";
    return std::nullopt;
  }
  std::string head(count, '\0');
  in.read(head.data(), static_cast<std::streamsize>(count));
  head.resize(static_cast<size_t>(in.gcount()));
  return head;
}

uint64_t little_endian_u64(const char* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = value << 8 | static_cast<unsigned char>(bytes[i]);
  return value;
}

// A read-only memory map of a whole file, unmapped when it goes.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw model_error(path + ": cannot be opened (" + std::strerror(errno) + ")");
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
      ::close(fd);
      throw model_error(path + ": cannot be read (" + std::strerror(errno) + ")");
    }
    size_ = static_cast<uint64_t>(info.st_size);
    if (size_ > 0) {
      void* data = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data == MAP_FAILED) {
        ::close(fd);
        throw model_error(path + ": cannot be mapped (" + std::strerror(errno) + ")");
      }
      data_ = static_cast<const char*>(data);
    }
    ::close(fd);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  }

  const char* data() const { return data_; }
  uint64_t size() const { return size_; }

  // Drops the pages wholly inside [begin, begin + bytes) from the process's memory once their
  // contents were copied out (they stay in the page cache; reading them again faults them back
  // in), so a model's peak memory is its fp32 weights rather than those plus the whole file.
  void release(const char* begin, uint64_t bytes) const {
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t first = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(begin) + bytes) / page * page;
    if (end > first) ::madvise(reinterpret_cast<void*>(first), end - first, MADV_DONTNEED);
  }

 private:
  const char* data_ = nullptr;
  uint64_t size_ = 0;
};

struct SafetensorsEntry {
  std::string name;
  const SafetensorsDtype* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

const SafetensorsDtype* find_dtype(const std::string& name) {
  for (const SafetensorsDtype& dtype : kSafetensorsDtypes) {
    if (name == dtype.name) return &dtype;
  }
  return nullptr;
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name,
                             const nlohmann::json& value, uint64_t data_size) {
  const std::string where = path + ": entry \"" + name + "\"";
  if (!value.is_object()) throw model_error(where + " is not an object");
  SafetensorsEntry entry;
  entry.name = name;
  const auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) throw model_error(where + " has no dtype");
  entry.dtype = find_dtype(dtype->get<std::string>());
  if (entry.dtype == nullptr) {
    throw model_error(where + " has the unknown dtype " + dtype->dump() +
                      " (expected F32, F16, BF16 or another safetensors dtype)");
  }
  if (!entry.dtype->scalar_type) {
    throw model_error(where + " has dtype " + entry.dtype->name +
                      ", which clipxai cannot read (weights are F32, F16 or BF16)");
  }
  const auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) throw model_error(where + " has no shape");
  uint64_t elements = 1;
  for (const auto& size : *shape) {
    if (!size.is_number_unsigned() || size.get<uint64_t>() > kMaxElements) {
      throw model_error(where + " has the shape " + shape->dump() +
                        " (expected non-negative sizes)");
    }
    const uint64_t dimension = size.get<uint64_t>();
    elements = dimension == 0 ? 0 : elements;
    if (dimension != 0 && elements > kMaxElements / dimension) {
      throw model_error(where + " has the shape " + shape->dump() + ", too many elements");
    }
    elements *= dimension;
    entry.shape.push_back(static_cast<int64_t>(dimension));
  }
  const auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    throw model_error(where + " has no data_offsets [begin, end]");
  }
  entry.begin = (*offsets)[0].get<uint64_t>();
  entry.end = (*offsets)[1].get<uint64_t>();
  if (entry.begin > entry.end || entry.end > data_size) {
    throw model_error(where + " has data_offsets " + offsets->dump() + " outside the " +
                      std::to_string(data_size) + " bytes of data (the file is truncated or " +
                      "damaged)");
  }
  if (entry.end - entry.begin != elements * entry.dtype->item_size) {
    throw model_error(where + " has data_offsets " + offsets->dump() + " holding " +
                      std::to_string(entry.end - entry.begin) + " bytes, but its shape " +
                      shape->dump() + " of " + entry.dtype->name + " needs " +
                      std::to_string(elements * entry.dtype->item_size));
  }
  return entry;
}

// ---- torch.save: a restricted unpickler ----------------------------------------------------

// The values a state dict's (or a TorchScript archive's module tree's) pickle builds. A Global is
// only ever one of the callables below, a storage type, or (in a module tree) a scripted class.
struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;
struct PickleStorage {
  torch::ScalarType type;
  std::string key;
  int64_t elements = 0;
};
struct PickleValue {
  using Items = std::vector<PickleRef>;
  struct Tuple {
    Items items;
  };
  struct List {
    Items items;
  };
  struct Dict {
    std::vector<std::pair<PickleRef, PickleRef>> items;
  };
  struct Global {
    std::string name;  // "module.name"
  };
  // A TorchScript module (or other scripted class) instance: its class and, once built, its
  // attributes (a Dict).
  struct Object {
    std::string type;
    PickleRef state;
  };
  std::variant<std::monostate, bool, int64_t, double, std::string, Tuple, List, Dict, Global,
               Object, PickleStorage, torch::Tensor>
      value;
};

// The storage classes torch.save names, and the tensor types they hold.
const std::map<std::string, torch::ScalarType> kStorageTypes = {
    {"torch.FloatStorage", torch::kFloat},       {"torch.HalfStorage", torch::kHalf},
    {"torch.BFloat16Storage", torch::kBFloat16}, {"torch.DoubleStorage", torch::kDouble},
    {"torch.LongStorage", torch::kLong},         {"torch.IntStorage", torch::kInt},
    {"torch.ShortStorage", torch::kShort},       {"torch.CharStorage", torch::kChar},
    {"torch.ByteStorage", torch::kByte},         {"torch.BoolStorage", torch::kBool},
};
const char* const kCallables[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                  "torch._utils._rebuild_parameter"};
// TorchScript's pickler names the classes of the objects it stores under this prefix; their code
// is in the archive's code/ folder, which is never read.
constexpr std::string_view kScriptedClassPrefix = "__torch__.";
// Helpers TorchScript's pickler wraps typed containers and lists in; each returns its first
// argument as far as tensors are concerned.
const char* const kTorchScriptHelpers[] = {
    "torch.jit._pickle.restore_type_tag", "torch.jit._pickle.build_intlist",
    "torch.jit._pickle.build_tensorlist", "torch.jit._pickle.build_doublelist",
    "torch.jit._pickle.build_boollist"};

bool is_one_of(const std::string& name, const char* const* begin, const char* const* end) {
  return std::find_if(begin, end, [&](const char* known) { return name == known; }) != end;
}

// Where a record's bytes lie in the file when the zip stores them uncompressed (as PyTorch's
// writer always does, 64-byte aligned), so they can be read from a memory map without a copy;
// nullopt for a compressed record. The local header before the data says how it is stored: it
// ends exactly at `data_offset` and names the record (after the archive's folder).
std::optional<uint64_t> stored_record_offset(const MappedFile& file, const std::string& record,
                                             uint64_t data_offset, uint64_t bytes) {
  constexpr uint64_t kLocalHeader = 30;
  if (data_offset > file.size() || bytes > file.size() - data_offset) return std::nullopt;
  const auto u16 = [&](uint64_t at) {
    return static_cast<uint64_t>(static_cast<unsigned char>(file.data()[at]) |
                                 static_cast<unsigned char>(file.data()[at + 1]) << 8);
  };
  const uint64_t lowest =
      data_offset > kLocalHeader + 2 * 65535 ? data_offset - kLocalHeader - 2 * 65535 : 0;
  for (uint64_t header = data_offset >= kLocalHeader ? data_offset - kLocalHeader + 1 : 0;
       header-- > lowest;) {
    if (std::memcmp(file.data() + header, "PK\x03\x04", 4) != 0) continue;
    const uint64_t name_length = u16(header + 26);
    if (kLocalHeader + name_length + u16(header + 28) != data_offset - header) continue;
    const std::string_view name(file.data() + header + kLocalHeader, name_length);
    const bool names_record =
        name == record ||
        (name.size() > record.size() && name[name.size() - record.size() - 1] == '/' &&
         name.substr(name.size() - record.size()) == record);
    if (!names_record) continue;
    if (u16(header + 8) != 0) return std::nullopt;  // compression method: 0 is stored
    return data_offset;
  }
  return std::nullopt;
}

class RestrictedUnpickler {
 public:
  // `module_tree`: the pickle is a TorchScript archive's data.pkl, whose scripted objects are
  // built as plain Objects. `file` maps the archive, for reading stored records in place.
  RestrictedUnpickler(const std::string& path, caffe2::serialize::PyTorchStreamReader& archive,
                      const std::string& pickle, const MappedFile& file, bool module_tree)
      : path_(path), archive_(archive), data_(pickle), file_(file), module_tree_(module_tree) {}

  PickleRef run() {
    while (true) {
      const unsigned char op = byte();
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO
        case 0x95:
          bytes(8);
          break;  // FRAME
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case '.':
          return pop();  // STOP
        case 'N':
          push({});
          break;
        case 0x88:
          push(true);
          break;  // NEWTRUE
        case 0x89:
          push(false);
          break;  // NEWFALSE
        case 'K':
          push(static_cast<int64_t>(byte()));
          break;  // BININT1
        case 'M':
          push(static_cast<int64_t>(unsigned_int(2)));
          break;  // BININT2
        case 'J':
          push(static_cast<int64_t>(static_cast<int32_t>(unsigned_int(4))));
          break;
        case 0x8a:
          push(long1());
          break;  // LONG1
        case 'G':
          push(binary_float());
          break;  // BINFLOAT
        case 'X':
          push(std::string(bytes(unsigned_int(4))));
          break;  // BINUNICODE
        case 0x8c:
          push(std::string(bytes(byte())));
          break;  // SHORT_BINUNICODE
        case 'U':
          push(std::string(bytes(byte())));
          break;  // SHORT_BINSTRING
        case 'T':
          push(std::string(bytes(unsigned_int(4))));
          break;  // BINSTRING
        case ')':
          push(PickleValue::Tuple{});
          break;  // EMPTY_TUPLE
        case 0x85:
          push_tuple(1);
          break;  // TUPLE1
        case 0x86:
          push_tuple(2);
          break;  // TUPLE2
        case 0x87:
          push_tuple(3);
          break;  // TUPLE3
        case 't':
          push(PickleValue::Tuple{pop_to_mark()});
          break;  // TUPLE
        case ']':
          push(PickleValue::List{});
          break;  // EMPTY_LIST
        case 'a':
          append({pop()});
          break;  // APPEND
        case 'e':
          append(pop_to_mark());
          break;  // APPENDS
        case '}':
          push(PickleValue::Dict{});
          break;  // EMPTY_DICT
        case 's':
          set_items(pop_n(2));
          break;  // SETITEM
        case 'u':
          set_items(pop_to_mark());
          break;  // SETITEMS
        case 'q':
          memo(byte());
          break;  // BINPUT
        case 'r':
          memo(unsigned_int(4));
          break;  // LONG_BINPUT
        case 0x94:
          memo(memo_.size());
          break;  // MEMOIZE
        case 'h':
          push_memo(byte());
          break;  // BINGET
        case 'j':
          push_memo(unsigned_int(4));
          break;  // LONG_BINGET
        case 'c':
          global();
          break;  // GLOBAL
        case 0x81:
          new_object();
          break;  // NEWOBJ
        case 'Q':
          persistent_load();
          break;  // BINPERSID
        case 'R':
          reduce();
          break;  // REDUCE
        case 'b':
          build();
          break;  // BUILD
        default:
          fail("uses the pickle operation 0x" + hex(op) + ", which a state dict does not");
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw model_error(path_ + ": data.pkl " + what + " (at byte " + std::to_string(position_) +
                      ")");
  }

  static std::string hex(unsigned char value) {
    const char* digits = "0123456789abcdef";
    return {digits[value >> 4], digits[value & 15]};
  }

  std::string_view bytes(uint64_t count) {
    if (count > data_.size() - position_) fail("is cut short");
    const std::string_view result(data_.data() + position_, count);
    position_ += count;
    return result;
  }
  unsigned char byte() { return static_cast<unsigned char>(bytes(1)[0]); }
  uint64_t unsigned_int(int size) {
    const std::string_view raw = bytes(size);
    uint64_t value = 0;
    for (int i = size - 1; i >= 0; --i) value = value << 8 | static_cast<unsigned char>(raw[i]);
    return value;
  }
  int64_t long1() {
    const std::string_view raw = bytes(byte());
    if (raw.size() > 8) fail("holds an integer wider than 64 bits");
    uint64_t value = 0;
    for (size_t i = raw.size(); i-- > 0;) value = value << 8 | static_cast<unsigned char>(raw[i]);
    if (!raw.empty() && raw.size() < 8 && (static_cast<unsigned char>(raw.back()) & 0x80) != 0) {
      value |= ~uint64_t{0} << (8 * raw.size());  // sign-extend
    }
    return static_cast<int64_t>(value);
  }
  double binary_float() {
    const std::string_view raw = bytes(8);
    uint64_t bits = 0;
    for (char c : raw) bits = bits << 8 | static_cast<unsigned char>(c);  // big-endian
    double value = 0;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }

  template <typename T>
  void push(T value) {
    stack_.push_back(std::make_shared<PickleValue>(PickleValue{std::move(value)}));
  }
  void push(std::monostate) { stack_.push_back(std::make_shared<PickleValue>()); }
  PickleRef pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) {
      fail("pops an empty stack");
    }
    PickleRef top = std::move(stack_.back());
    stack_.pop_back();
    return top;
  }
  PickleValue::Items pop_n(size_t count) {
    PickleValue::Items items(count);
    for (size_t i = count; i-- > 0;) items[i] = pop();
    return items;
  }
  PickleValue::Items pop_to_mark() {
    if (marks_.empty()) fail("closes a MARK that was never opened");
    const size_t mark = marks_.back();
    marks_.pop_back();
    PickleValue::Items items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  void push_tuple(size_t count) { push(PickleValue::Tuple{pop_n(count)}); }

  PickleRef& top() {
    if (stack_.empty()) fail("works on an empty stack");
    return stack_.back();
  }
  void append(PickleValue::Items items) {
    auto* list = std::get_if<PickleValue::List>(&top()->value);
    if (list == nullptr) fail("appends to something that is not a list");
    for (auto& item : items) list->items.push_back(std::move(item));
  }
  void set_items(PickleValue::Items items) {
    auto* dict = std::get_if<PickleValue::Dict>(&top()->value);
    if (dict == nullptr || items.size() % 2 != 0) fail("sets items of something not a dict");
    for (size_t i = 0; i < items.size(); i += 2) dict->items.emplace_back(items[i], items[i + 1]);
  }
  void memo(uint64_t index) {
    if (index > memo_.size() + 1'000'000) fail("memoises at an implausible index");
    if (index >= memo_.size()) memo_.resize(index + 1);
    memo_[index] = top();
  }
  void push_memo(uint64_t index) {
    if (index >= memo_.size() || !memo_[index]) fail("recalls a value it never stored");
    stack_.push_back(memo_[index]);
  }

  void global() {
    const auto line = [&] {
      const size_t end = data_.find('\n', position_);
      if (end == std::string::npos) fail("is cut short");
      const size_t length = end - position_;
      return std::string(bytes(length + 1).substr(0, length));
    };
    const std::string module = line();
    const std::string name = module + "." + line();
    const bool known = kStorageTypes.count(name) > 0 ||
                       is_one_of(name, std::begin(kCallables), std::end(kCallables)) ||
                       (module_tree_ && (name.rfind(kScriptedClassPrefix, 0) == 0 ||
                                         is_one_of(name, std::begin(kTorchScriptHelpers),
                                                   std::end(kTorchScriptHelpers))));
    if (!known) {
      fail("names " + name +
           (module_tree_ ? ", which a TorchScript module's tensors do not need"
                         : ", which a state dict of tensors does not hold"));
    }
    push(PickleValue::Global{name});
  }

  // cls.__new__(cls, *args): only a scripted class, built empty; BUILD gives it its attributes.
  void new_object() {
    pop();  // the arguments, which TorchScript leaves empty
    const PickleRef type_value = pop();
    const std::string& type = as<PickleValue::Global>(type_value, "object's class").name;
    if (type.rfind(kScriptedClassPrefix, 0) != 0) fail("makes an object of " + type);
    push(PickleValue::Object{type, nullptr});
  }

  // obj.__setstate__(state): a scripted object's attributes; for anything else (the _metadata a
  // state dict's OrderedDict carries) the state is dropped, as nothing needs it.
  void build() {
    PickleRef state = pop();
    if (auto* object = std::get_if<PickleValue::Object>(&top()->value)) {
      object->state = std::move(state);
    }
  }

  // The value's T, which lives as long as `value` does: a value just popped must be held first
  // (the stack may have been its only owner), hence no overload for temporaries.
  template <typename T>
  const T& as(const PickleRef& value, const char* what) const {
    const T* typed = std::get_if<T>(&value->value);
    if (typed == nullptr) fail(std::string("has a malformed ") + what);
    return *typed;
  }
  template <typename T>
  const T& as(PickleRef&& value, const char* what) const = delete;

  void persistent_load() {
    const PickleRef reference = pop();
    const auto& id = as<PickleValue::Tuple>(reference, "storage reference").items;
    if (id.size() != 5 || as<std::string>(id[0], "storage reference") != "storage") {
      fail("refers to something other than a storage");
    }
    const std::string& type_name = as<PickleValue::Global>(id[1], "storage type").name;
    const auto type = kStorageTypes.find(type_name);
    if (type == kStorageTypes.end()) fail("refers to a storage of type " + type_name);
    const int64_t elements = as<int64_t>(id[4], "storage size");
    if (elements < 0) fail("refers to a storage of negative size");
    push(PickleStorage{type->second, as<std::string>(id[2], "storage key"), elements});
  }

  // A storage's record as a flat tensor, read once however many tensors share it.
  torch::Tensor storage_tensor(const PickleStorage& storage) {
    const auto cached = storages_.find(storage.key);
    if (cached != storages_.end()) return cached->second;
    const std::string record = "data/" + storage.key;
    if (!archive_.hasRecord(record)) fail("refers to the missing record " + record);
    const uint64_t item = c10::elementSize(storage.type);
    if (static_cast<uint64_t>(storage.elements) > file_.size() / item)
      fail("has an implausible storage size");
    const uint64_t bytes = static_cast<uint64_t>(storage.elements) * item;
    torch::Tensor flat;
    if (const auto offset =
            stored_record_offset(file_, record, archive_.getRecordOffset(record), bytes)) {
      // A view of the mapping; rebuild_tensor copies what it keeps.
      flat = torch::from_blob(const_cast<char*>(file_.data() + *offset), {storage.elements},
                              torch::dtype(storage.type));
    } else {
      auto [data, size] = archive_.getRecord(record);
      if (bytes > size) {
        fail("gives record " + record + " " + std::to_string(storage.elements) +
             " elements, but it holds " + std::to_string(size) + " bytes");
      }
      flat = torch::empty({storage.elements}, torch::dtype(storage.type));
      std::memcpy(flat.data_ptr(), data.get(), static_cast<size_t>(bytes));
    }
    storages_.emplace(storage.key, flat);
    return flat;
  }

  std::vector<int64_t> integers(const PickleRef& value, const char* what) const {
    std::vector<int64_t> result;
    for (const auto& item : as<PickleValue::Tuple>(value, what).items) {
      result.push_back(as<int64_t>(item, what));
    }
    return result;
  }

  torch::Tensor rebuild_tensor(const PickleValue::Items& args) {
    if (args.size() < 4) fail("rebuilds a tensor from too few arguments");
    const torch::Tensor flat = storage_tensor(as<PickleStorage>(args[0], "tensor storage"));
    const int64_t offset = as<int64_t>(args[1], "tensor offset");
    const std::vector<int64_t> size = integers(args[2], "tensor size");
    const std::vector<int64_t> stride = integers(args[3], "tensor stride");
    if (size.size() != stride.size() || offset < 0) fail("has a malformed tensor layout");
    // The last element the view reaches must lie inside the storage.
    int64_t last = offset;
    bool empty = false;
    for (size_t i = 0; i < size.size(); ++i) {
      if (size[i] < 0 || stride[i] < 0 || size[i] > int64_t{1} << 40 ||
          stride[i] > int64_t{1} << 40) {
        fail("has a malformed tensor layout");
      }
      empty = empty || size[i] == 0;
      last += (size[i] > 0 ? size[i] - 1 : 0) * stride[i];
    }
    if (!empty && last >= flat.numel()) fail("has a tensor reaching past its storage");
    if (empty) return torch::empty(size, torch::kFloat);
    torch::Tensor tensor = flat.as_strided(size, stride, offset)
                               .to(torch::kFloat, /*non_blocking=*/false, /*copy=*/true)
                               .contiguous();
    const auto* bytes = static_cast<const char*>(flat.data_ptr());
    if (bytes >= file_.data() && bytes < file_.data() + file_.size()) {
      file_.release(bytes, static_cast<uint64_t>(flat.nbytes()));
    }
    return tensor;
  }

  void reduce() {
    const PickleRef arguments = pop();
    const PickleRef call = pop();
    const PickleValue::Items& args = as<PickleValue::Tuple>(arguments, "call's arguments").items;
    const std::string& callable = as<PickleValue::Global>(call, "call").name;
    if (callable == "collections.OrderedDict") {
      push(PickleValue::Dict{});
    } else if (callable == "torch._utils._rebuild_tensor_v2") {
      push(rebuild_tensor(args));
    } else if (callable == "torch._utils._rebuild_parameter" && !args.empty()) {
      push(as<torch::Tensor>(args[0], "parameter"));
    } else if (module_tree_ && !args.empty() &&
               is_one_of(callable, std::begin(kTorchScriptHelpers),
                         std::end(kTorchScriptHelpers))) {
      stack_.push_back(args[0]);
    } else {
      fail("calls " + callable + " in a way a state dict does not");
    }
  }

  const std::string& path_;
  caffe2::serialize::PyTorchStreamReader& archive_;
  const std::string& data_;
  const MappedFile& file_;  // no storage can hold more bytes than the file
  const bool module_tree_;
  size_t position_ = 0;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::vector<PickleRef> memo_;
  std::map<std::string, torch::Tensor> storages_;
};

// The tensors of a pickled dict; a training checkpoint's {"state_dict": {...}} is unwrapped and
// the "module." prefix of a DataParallel model dropped, as open_clip's own loader does.
NamedTensors tensors_of(const std::string& path, const PickleRef& root) {
  const auto* dict = std::get_if<PickleValue::Dict>(&root->value);
  if (dict == nullptr) throw model_error(path + ": holds no dict of tensors (not a state dict)");
  for (const auto& [key, value] : dict->items) {
    const auto* name = std::get_if<std::string>(&key->value);
    if (name != nullptr && *name == "state_dict" &&
        std::holds_alternative<PickleValue::Dict>(value->value)) {
      return tensors_of(path, value);
    }
  }
  NamedTensors tensors;
  for (const auto& [key, value] : dict->items) {
    const auto* name = std::get_if<std::string>(&key->value);
    const auto* tensor = std::get_if<torch::Tensor>(&value->value);
    if (name == nullptr || tensor == nullptr) continue;
    const bool wrapped = name->rfind("module.", 0) == 0;
    tensors[wrapped ? name->substr(7) : *name] = *tensor;
  }
  return tensors;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

std::optional<TensorFileKind> sniff_tensor_file(const std::string& path, std::string* why) {
  if (const auto problem = input_file_problem(path)) {
    *why = *problem;
    return std::nullopt;
  }
  const std::optional<std::string> head = first_bytes(path, 9, why);
  if (!head) return std::nullopt;
  if (head->size() >= 4 && head->compare(0, 4, "PK\x03\x04", 4) == 0) {
    return TensorFileKind::TorchSave;
  }
  // A file named .safetensors is read as one, so that a damaged one is told what is wrong.
  if ((head->size() == 9 && (*head)[8] == '{') ||
      std::filesystem::path(path).extension() == ".safetensors") {
    return TensorFileKind::Safetensors;
  }
  if (!head->empty() && static_cast<unsigned char>((*head)[0]) == 0x80) {
    *why =
        "a pickle: a legacy torch.save file (PyTorch before 1.6), which clipxai does not read; "
        "load and save it again with a newer PyTorch, or as safetensors";
    return std::nullopt;
  }
  *why = "neither a safetensors file (an 8-byte header length, then '{') nor a zip file";
  return std::nullopt;
}

NamedTensors read_tensor_file(const std::string& path) {
  std::string why;
  const std::optional<TensorFileKind> kind = sniff_tensor_file(path, &why);
  if (!kind) throw model_error(path + ": " + why);
  return *kind == TensorFileKind::Safetensors ? read_safetensors(path) : read_torch_save(path);
}

NamedTensors read_safetensors(const std::string& path) {
  const MappedFile file(path);
  if (file.size() < 8) {
    throw model_error(path + ": truncated safetensors file (" + std::to_string(file.size()) +
                      " bytes; it starts with an 8-byte header length)");
  }
  const uint64_t header_size = little_endian_u64(file.data());
  if (header_size > file.size() - 8) {
    throw model_error(path + ": safetensors header length " + std::to_string(header_size) +
                      " runs past the end of the file (" + std::to_string(file.size()) +
                      " bytes): truncated or not a safetensors file");
  }
  if (header_size > kMaxSafetensorsHeader) {
    throw model_error(path + ": safetensors header length " + std::to_string(header_size) +
                      " is over the format's limit of " + std::to_string(kMaxSafetensorsHeader));
  }
  nlohmann::json header;
  if (const auto why = parse_json_text(std::string_view(file.data() + 8, header_size), header)) {
    throw model_error(path + ": safetensors header is not valid JSON (" + first_line(*why) + ")");
  }
  if (!header.is_object()) throw model_error(path + ": safetensors header is not a JSON object");
  const uint64_t data_size = file.size() - 8 - header_size;
  std::vector<SafetensorsEntry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") continue;
    entries.push_back(parse_entry(path, name, value, data_size));
  }
  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& entry : entries) by_offset.push_back(&entry);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      throw model_error(path + ": entries \"" + by_offset[i - 1]->name + "\" and \"" +
                        by_offset[i]->name + "\" overlap in the data");
    }
  }
  const char* data = file.data() + 8 + header_size;
  NamedTensors tensors;
  for (const auto& entry : entries) {
    // from_blob only views the mapping; the copy to fp32 owns its memory before the unmap.
    const torch::Tensor view = torch::from_blob(const_cast<char*>(data + entry.begin), entry.shape,
                                                torch::dtype(*entry.dtype->scalar_type));
    tensors[entry.name] = view.to(torch::kFloat, /*non_blocking=*/false, /*copy=*/true);
    file.release(data + entry.begin, entry.end - entry.begin);
  }
  return tensors;
}

namespace {

// Runs the restricted unpickler over `path`'s data.pkl and hands `use` the value it builds, with
// the archive still open; `kind` names what the file should be in errors.
template <typename Result>
Result read_zip_pickle(const std::string& path, bool module_tree, const std::string& kind,
                       const std::function<Result(caffe2::serialize::PyTorchStreamReader& archive,
                                                  const PickleRef& root)>& use) {
  try {
    const MappedFile file(path);
    caffe2::serialize::PyTorchStreamReader archive(path);
    if (!archive.hasRecord("data.pkl")) {
      throw model_error(path + ": a zip file without data.pkl: not a " + kind);
    }
    auto [pickle_data, pickle_size] = archive.getRecord("data.pkl");
    const std::string pickle(static_cast<const char*>(pickle_data.get()), pickle_size);
    RestrictedUnpickler unpickler(path, archive, pickle, file, module_tree);
    return use(archive, unpickler.run());
  } catch (const c10::Error& e) {
    throw model_error(path + ": not a readable " + kind + " (" +
                      first_line(e.what_without_backtrace()) + ")");
  }
}

// Every tensor attribute under `value` by its qualified name ("visual.conv1.weight"), as
// torch::jit::Module::named_attributes(recurse) names them.
void collect_module_tensors(const std::string& path, const std::string& prefix,
                            const PickleRef& value, int depth, NamedTensors& tensors) {
  constexpr int kDeepestModule = 64;
  if (const auto* tensor = std::get_if<torch::Tensor>(&value->value)) {
    tensors[prefix] = *tensor;
    return;
  }
  const auto* object = std::get_if<PickleValue::Object>(&value->value);
  if (object == nullptr || object->state == nullptr) return;
  if (depth > kDeepestModule) {
    throw model_error(path + ": data.pkl nests modules deeper than " +
                      std::to_string(kDeepestModule) + " levels");
  }
  const auto* attributes = std::get_if<PickleValue::Dict>(&object->state->value);
  if (attributes == nullptr) return;
  for (const auto& [key, attribute] : attributes->items) {
    const auto* name = std::get_if<std::string>(&key->value);
    if (name == nullptr) continue;
    collect_module_tensors(path, prefix.empty() ? *name : prefix + "." + *name, attribute,
                           depth + 1, tensors);
  }
}

}  // namespace

NamedTensors read_torch_save(const std::string& path) {
  return read_zip_pickle<NamedTensors>(
      path, /*module_tree=*/false, "torch.save zip file",
      [&](caffe2::serialize::PyTorchStreamReader&, const PickleRef& root) {
        return tensors_of(path, root);
      });
}

TorchScriptArchive read_torchscript(const std::string& path,
                                    const std::vector<std::string>& extra_files) {
  return read_zip_pickle<TorchScriptArchive>(
      path, /*module_tree=*/true, "TorchScript archive",
      [&](caffe2::serialize::PyTorchStreamReader& archive, const PickleRef& root) {
        if (!std::holds_alternative<PickleValue::Object>(root->value)) {
          throw model_error(path + ": data.pkl holds no module (not a TorchScript archive)");
        }
        TorchScriptArchive result;
        collect_module_tensors(path, "", root, 0, result.tensors);
        for (const std::string& name : extra_files) {
          const std::string record = "extra/" + name;
          if (!archive.hasRecord(record)) continue;
          auto [data, size] = archive.getRecord(record);
          result.extra_files[name].assign(static_cast<const char*>(data.get()), size);
        }
        return result;
      });
}

}  // namespace clipxai
