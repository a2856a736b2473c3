from .atomic_files import (atomic_path, replace_file, write_bytes_atomic,
                           write_json_atomic, write_text_atomic)

__all__ = ['atomic_path', 'replace_file', 'write_bytes_atomic',
           'write_json_atomic', 'write_text_atomic']
