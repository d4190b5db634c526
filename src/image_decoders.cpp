#include "image_decoders.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include <jpeglib.h>
// jpeglib.h first: jerror.h needs its types.
#include <jerror.h>
#include <png.h>

namespace clipxai {
namespace {

// ---- JPEG ----

// libjpeg's error manager first, so the `err` pointer libjpeg hands back is this.
struct ErrorState {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char fatal[JMSG_LENGTH_MAX];
  char damage[JMSG_LENGTH_MAX];  // the first warning that means lost pixels, or ""
};

// Warnings after which part of the picture is filler, not the file's data.
bool loses_pixels(int code) {
  return code == JWRN_HIT_MARKER || code == JWRN_JPEG_EOF || code == JWRN_MUST_RESYNC ||
         code == JWRN_HUFF_BAD_CODE;
}

extern "C" void fail_decoding(j_common_ptr info) {
  auto* state = reinterpret_cast<ErrorState*>(info->err);
  info->err->format_message(info, state->fatal);
  std::longjmp(state->jump, 1);
}

// Replaces libjpeg's default, which prints warnings to standard error.
extern "C" void note_message(j_common_ptr info, int level) {
  auto* state = reinterpret_cast<ErrorState*>(info->err);
  if (level < 0 && state->damage[0] == '\0' && loses_pixels(info->err->msg_code)) {
    info->err->format_message(info, state->damage);
  }
}

// OpenCV's icvCvt_CMYK2BGR_8u_C4C3R, in RGB order: Adobe's inverted CMYK.
void cmyk_to_rgb(const JSAMPLE* cmyk, uint8_t* rgb, JDIMENSION width) {
  for (JDIMENSION x = 0; x < width; ++x, cmyk += 4, rgb += 3) {
    const int k = cmyk[3];
    for (int c = 0; c < 3; ++c) rgb[c] = static_cast<uint8_t>(k - ((255 - cmyk[c]) * k >> 8));
  }
}

// ---- PNG ----

struct PngSource {
  std::string_view bytes;
  size_t position = 0;
  std::jmp_buf jump;
  char fatal[256];
};

extern "C" void read_png_bytes(png_structp png, png_bytep data, size_t length) {
  auto* source = static_cast<PngSource*>(png_get_io_ptr(png));
  if (length > source->bytes.size() - source->position) png_error(png, "the data ends early");
  std::memcpy(data, source->bytes.data() + source->position, length);
  source->position += length;
}

extern "C" void fail_png(png_structp png, png_const_charp message) {
  auto* source = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(source->fatal, sizeof source->fatal, "%s", message);
  std::longjmp(source->jump, 1);
}

// Replaces libpng's default, which prints warnings (an ancillary chunk's bad CRC, an odd ICC
// profile) to standard error; they do not change the pixels.
extern "C" void ignore_png_warning(png_structp, png_const_charp) {}

}  // namespace

// Every object that outlives a longjmp is made before setjmp; the code after it creates none
// with a destructor, so the jump skips nothing.
DecodedPixels decode_jpeg(std::string_view bytes) {
  DecodedPixels image;
  jpeg_decompress_struct info{};
  ErrorState state{};
  info.err = jpeg_std_error(&state.manager);
  state.manager.error_exit = fail_decoding;
  state.manager.emit_message = note_message;
  if (setjmp(state.jump) != 0) {
    jpeg_destroy_decompress(&info);
    image.rgb.release();
    image.problem = state.fatal;
    return image;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&info, TRUE);
  for (jpeg_saved_marker_ptr marker = info.marker_list; marker != nullptr; marker = marker->next) {
    if (marker->data_length >= 6 && std::memcmp(marker->data, "Exif\0\0", 6) == 0) {
      image.exif.assign(reinterpret_cast<const char*>(marker->data), marker->data_length);
      break;
    }
  }
  const bool cmyk = info.num_components == 4;
  info.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&info);
  image.rgb.create(static_cast<int>(info.output_height), static_cast<int>(info.output_width),
                   CV_8UC3);
  JSAMPARRAY buffer = cmyk ? (*info.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&info),
                                                       JPOOL_IMAGE, info.output_width * 4, 1)
                           : nullptr;
  while (info.output_scanline < info.output_height) {
    uint8_t* row = image.rgb.ptr<uint8_t>(static_cast<int>(info.output_scanline));
    if (cmyk) {
      jpeg_read_scanlines(&info, buffer, 1);
      cmyk_to_rgb(buffer[0], row, info.output_width);
    } else {
      JSAMPROW rows[] = {row};
      jpeg_read_scanlines(&info, rows, 1);
    }
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  if (state.damage[0] != '\0') {
    image.rgb.release();
    image.problem = state.damage;
  }
  return image;
}

// As decode_jpeg: everything the jump may cross is made before setjmp.
DecodedPixels decode_png(std::string_view bytes) {
  DecodedPixels image;
  PngSource source;
  source.bytes = bytes;
  source.fatal[0] = '\0';
  std::vector<png_bytep> rows;
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, fail_png, ignore_png_warning);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  png_infop end_info = info != nullptr ? png_create_info_struct(png) : nullptr;
  if (end_info == nullptr) {
    png_destroy_read_struct(&png, &info, nullptr);
    image.problem = "libpng could not start";
    return image;
  }
  if (setjmp(source.jump) != 0) {
    png_destroy_read_struct(&png, &info, &end_info);
    image.rgb.release();
    image.problem = source.fatal;
    return image;
  }
  png_set_read_fn(png, &source, read_png_bytes);
  png_read_info(png, info);
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (bit_depth == 16) png_set_strip_16(png);
  png_set_strip_alpha(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  const bool grey = (color_type & PNG_COLOR_MASK_COLOR) == 0;
  if (grey && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (grey) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  image.rgb.create(static_cast<int>(png_get_image_height(png, info)),
                   static_cast<int>(png_get_image_width(png, info)), CV_8UC3);
  rows.resize(static_cast<size_t>(image.rgb.rows));
  for (int y = 0; y < image.rgb.rows; ++y)
    rows[static_cast<size_t>(y)] = image.rgb.ptr<png_byte>(y);
  png_read_image(png, rows.data());
  png_read_end(png, end_info);
  png_uint_32 exif_size = 0;
  png_bytep exif = nullptr;
  for (png_infop where : {info, end_info}) {
    if (exif == nullptr && png_get_valid(png, where, PNG_INFO_eXIf) != 0) {
      png_get_eXIf_1(png, where, &exif_size, &exif);
    }
  }
  if (exif != nullptr) image.exif.assign(reinterpret_cast<const char*>(exif), exif_size);
  png_destroy_read_struct(&png, &info, &end_info);
  return image;
}

}  // namespace clipxai
