// Runs a fuzz target's entry point over files, for builds without libFuzzer: the seed corpus
// and every regression input kept in the tree are replayed by `meson test --suite fuzz` in
// every build, sanitizers included. Each argument is a file or a directory of files.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool run_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "fuzz driver: cannot read %s\n", path.c_str());
        return false;
    }
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A copy of exactly the input's size, so a read past the end is caught by ASan as in libFuzzer.
    std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
    return true;
}

}  // namespace

int main(int argc, char** argv)
{
    std::size_t inputs = 0;
    for (int i = 1; i < argc; ++i) {
        std::vector<std::string> files;
        struct stat st {};
        if (stat(argv[i], &st) != 0) {
            std::fprintf(stderr, "fuzz driver: no such file or directory: %s\n", argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR* d = opendir(argv[i]);
            if (!d)
                return 1;
            while (const dirent* e = readdir(d))
                if (e->d_name[0] != '.')
                    files.push_back(std::string(argv[i]) + "/" + e->d_name);
            closedir(d);
            std::sort(files.begin(), files.end());
        } else {
            files.emplace_back(argv[i]);
        }
        for (const std::string& f : files) {
            if (!run_file(f))
                return 1;
            ++inputs;
        }
    }
    if (inputs == 0) {
        std::fprintf(stderr, "fuzz driver: no inputs: a corpus that is not there tests nothing\n");
        return 1;
    }
    std::printf("%zu inputs run\n", inputs);
    return 0;
}
