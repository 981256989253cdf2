"""Download jobs of the MAST proxy: state, its store on disk, progress, transfers and the manager.

``state`` holds the persisted models and their transitions, ``store`` the file-locked state
files, ``progress`` the live tracker and the progress object, ``transfer`` the HTTP and S3
downloaders, and ``manager`` the job operations behind the download endpoints.
"""
